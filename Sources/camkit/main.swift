print("camkit")
